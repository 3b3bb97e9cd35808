//! WAL framing (CRC64-NVME over length + payload) and appending framed
//! entries to a segment file, through the page cache and with direct I/O
//! (no fsync: that is the disk's cost, measured by `strata-bench limits`).
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strata_wal::{begin_entry, finish_entry, SegmentWriter};

fn framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_framing");
    for len in [1024usize, 16 * 1024, 1024 * 1024] {
        let payload = vec![7u8; len];
        let mut buf = Vec::with_capacity(len + 64);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(
            BenchmarkId::new("frame_crc64nvme", len),
            &payload,
            |b, p| {
                b.iter(|| {
                    buf.clear();
                    let open = begin_entry(&mut buf);
                    buf.extend_from_slice(p);
                    finish_entry(&mut buf, open).unwrap();
                })
            },
        );
    }
    group.finish();
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("wal_append");
    let len = 64 * 1024;
    let mut framed = Vec::new();
    let open = begin_entry(&mut framed);
    framed.extend_from_slice(&vec![7u8; len]);
    finish_entry(&mut framed, open).unwrap();
    group.throughput(Throughput::Bytes(framed.len() as u64));
    // Segment ids: the buffered run counts up from 0, the direct one from 1 << 32.
    for (name, direct, mut id) in [
        ("append_64KiB_entry", false, 0u64),
        ("append_64KiB_entry_direct", true, 1 << 32),
    ] {
        let mut writer =
            SegmentWriter::create(&strata_wal::RealStorage, dir.path(), id, direct).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                if writer.len() > 256 * 1024 * 1024 {
                    id += 1;
                    writer =
                        SegmentWriter::create(&strata_wal::RealStorage, dir.path(), id, direct)
                            .unwrap();
                }
                writer.append(&framed).unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, framing, append);
criterion_main!(benches);
