//! Read-ahead: hits, misses, its memory bound, damaged batches, and
//! windows of a segment file that WAL compaction replaced.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use strata_protocol::builder::{build_batch, RecordSpec};
use strata_wal::SegmentFile;

use super::*;
use crate::partition::{PartitionLog, PartitionState};
use crate::tail_cache::TailCache;

/// A batch of `records` records of `size` bytes at `base_offset`.
fn batch(base_offset: i64, records: usize, size: usize) -> Vec<u8> {
    let value = vec![(base_offset % 251) as u8; size];
    let specs: Vec<RecordSpec<'_>> = (0..records)
        .map(|i| RecordSpec {
            key: None,
            value: Some(&value),
            timestamp: i as i64,
        })
        .collect();
    let mut bytes = build_batch(&specs);
    // The base offset is outside the CRC.
    bytes[..8].copy_from_slice(&base_offset.to_be_bytes());
    bytes
}

/// A segment file `name` in `dir` holding `batches` one after another
/// (after 100 bytes of something else), opened for direct reads; `None`
/// where the file system has no direct I/O.
fn segment(
    dir: &Path,
    name: &str,
    id: SegmentId,
    batches: &[Vec<u8>],
) -> Option<(Arc<SegmentFile>, Vec<PlannedBatch>)> {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    let mut position = 100u64;
    file.write_all(&[0xEE; 100]).unwrap();
    let mut planned = Vec::new();
    let mut offset = 0;
    for b in batches {
        file.write_all(b).unwrap();
        let base_offset = i64::from_be_bytes(b[..8].try_into().unwrap());
        let records = i64::from(u32::from_be_bytes(b[57..61].try_into().unwrap()));
        planned.push((base_offset, records, position, b.len()));
        position += b.len() as u64;
        offset += 1;
    }
    assert_eq!(offset, batches.len());
    file.sync_all().unwrap();
    let file = Arc::new(SegmentFile::open(&path, true).unwrap());
    if !file.is_direct() {
        println!("no direct I/O in {}: skipped", dir.display());
        return None;
    }
    let planned = planned
        .into_iter()
        .map(|(base_offset, records, position, len)| PlannedBatch {
            file: Arc::clone(&file),
            segment: id,
            base_offset,
            last_offset: base_offset + records - 1,
            position,
            len,
        })
        .collect();
    Some((file, planned))
}

/// Ten batches of 4 records of 1 KiB, offsets 0, 4, 8, ...
fn ten_batches() -> Vec<Vec<u8>> {
    (0..10).map(|i| batch(i * 4, 4, 1024)).collect()
}

fn intact(taken: Option<Taken>) -> Bytes {
    match taken {
        Some(Taken::Intact(bytes)) => bytes,
        other => panic!("expected an intact batch, got {other:?}"),
    }
}

#[test]
fn batches_read_ahead_are_served_from_memory_and_go_once_served() {
    let dir = tempfile::tempdir().unwrap();
    let batches = ten_batches();
    let Some((_, planned)) = segment(dir.path(), "a.wal", 3, &batches) else {
        return;
    };
    let ahead = ReadAhead::new(DEFAULT_BYTES);
    assert_eq!(ahead.request(&planned[2..6]), 4);
    assert!(ahead.holds(&planned[2]));
    let held = ahead.held_bytes();
    assert_eq!(ahead.request(&planned[2..6]), 4, "asked again");
    assert_eq!(ahead.held_bytes(), held, "read ahead once");
    for (b, bytes) in planned[2..6].iter().zip(&batches[2..6]) {
        assert_eq!(intact(ahead.take(b)).as_ref(), bytes.as_slice());
    }
    assert_eq!(ahead.held_bytes(), 0, "the window went with its last batch");
    assert!(ahead.take(&planned[2]).is_none());
}

#[test]
fn a_batch_not_read_ahead_is_a_miss_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_, planned)) = segment(dir.path(), "a.wal", 3, &ten_batches()) else {
        return;
    };
    let ahead = ReadAhead::new(DEFAULT_BYTES);
    ahead.request(&planned[5..7]);
    assert_eq!(ahead.first_held(&planned[2..9]), Some(3));
    assert_eq!(ahead.first_held(&planned[6..]), Some(0));
    assert_eq!(ahead.first_held(&planned[..5]), None);
    let started = Instant::now();
    assert!(ahead.take(&planned[4]).is_none());
    assert!(!ahead.holds(&planned[8]));
    assert!(started.elapsed() < WAIT / 2, "a miss waited");
    // Turned off, nothing is read ahead.
    let off = ReadAhead::new(0);
    assert!(!off.enabled());
    assert_eq!(off.request(&planned[..2]), 0);
    assert!(off.take(&planned[0]).is_none());
}

#[test]
fn memory_stays_within_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Twelve batches of 1 MiB, in windows of three (buffers of 4 MiB).
    let batches: Vec<Vec<u8>> = (0..12).map(|i| batch(i, 1, 1 << 20)).collect();
    let Some((_, planned)) = segment(dir.path(), "a.wal", 1, &batches) else {
        return;
    };
    // Room for two buffers.
    let ahead = ReadAhead::new(2 * (4 * 1024 * 1024 + 2 * BLOCK));
    assert_eq!(ahead.request(&planned), 12);
    // What is served is kept (as an answer not yet sent keeps it): two
    // windows get a buffer, the others find no room, and their batches are
    // left to the reads.
    let mut served = Vec::new();
    let mut missed = Vec::new();
    for (b, expected) in planned.iter().zip(&batches) {
        match ahead.take(b) {
            Some(Taken::Intact(bytes)) => {
                assert_eq!(bytes.as_ref(), expected.as_slice());
                served.push(bytes);
            }
            Some(Taken::Damaged) => panic!("damaged"),
            None => missed.push(b.clone()),
        }
    }
    assert_eq!(served.len(), 6, "two windows of three batches");
    assert_eq!(ahead.held_bytes(), 0);
    // Sent and dropped, the buffers are used again.
    drop(served);
    assert_eq!(ahead.request(&missed), 6);
    for b in &missed {
        let expected = &batches[usize::try_from(b.base_offset).unwrap()];
        assert_eq!(intact(ahead.take(b)).as_ref(), expected.as_slice());
    }
}

#[test]
fn the_pool_reuses_buffers_nobody_views_without_zeroing_them() {
    let grain = 1024 * 1024;
    let mut pool = pool::Pool::new(2 * (grain + BLOCK));
    let mut a = pool.take(100).unwrap();
    assert_eq!(a.as_ptr() as usize % BLOCK, 0);
    assert_eq!(a.len(), grain, "whole MiB, initialized");
    a[..4].copy_from_slice(b"data");
    let a = a.freeze();
    let view = a.slice(..4);
    pool.give_back(a);
    let b = pool.take(grain).unwrap();
    assert!(pool.take(1).is_none(), "the limit: one buffer still viewed");
    drop(view);
    let again = pool.take(10).unwrap();
    assert_eq!(&again[..4], b"data", "reused as it was");
    assert_eq!(pool.allocated(), 2 * (grain + BLOCK));
    pool.give_back(again.freeze());
    pool.give_back(b.freeze());
    // A larger buffer: the unused ones make room for it.
    let big = pool.take(grain + 1).unwrap();
    assert_eq!(big.len(), 2 * grain);
    assert_eq!(pool.allocated(), 2 * grain + BLOCK);
    pool.give_back(big.freeze());
    assert!(pool.take(3 * grain).is_none(), "larger than the limit");
    pool.release_unused();
    assert_eq!(pool.allocated(), 0);
}

#[test]
fn a_damaged_batch_is_reported_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut batches = ten_batches();
    let last = batches[3].len() - 1;
    batches[3][last] ^= 0xFF;
    let Some((_, planned)) = segment(dir.path(), "a.wal", 3, &batches) else {
        return;
    };
    let ahead = ReadAhead::new(DEFAULT_BYTES);
    assert_eq!(ahead.request(&planned[2..5]), 3);
    assert_eq!(intact(ahead.take(&planned[2])).as_ref(), &batches[2][..]);
    assert!(matches!(ahead.take(&planned[3]), Some(Taken::Damaged)));
    assert_eq!(intact(ahead.take(&planned[4])).as_ref(), &batches[4][..]);
}

/// WAL compaction replaces segment 7 by a file with the same id whose
/// positions hold other batches: a window of the old file never serves a
/// batch planned in the new one, and forgetting the segment drops it.
#[test]
fn windows_of_a_replaced_segment_file_never_serve_its_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_, old)) = segment(dir.path(), "old.wal", 7, &ten_batches()) else {
        return;
    };
    // Same id, same sizes and positions, other offsets.
    let moved: Vec<Vec<u8>> = (0..10).map(|i| batch(1000 + i * 4, 4, 1024)).collect();
    let Some((_, new)) = segment(dir.path(), "new.wal", 7, &moved) else {
        return;
    };
    let ahead = ReadAhead::new(DEFAULT_BYTES);
    assert_eq!(ahead.request(&old[..4]), 4);
    assert!(ahead.take(&new[0]).is_none(), "another file");
    let mut same_place = new[1].clone();
    same_place.base_offset = old[1].base_offset;
    assert!(ahead.take(&same_place).is_none(), "another file");
    ahead.forget(&[7]);
    assert_eq!(ahead.held_bytes(), 0);
    assert!(ahead.take(&old[2]).is_none());
    // The replacement is read ahead like any other file.
    assert_eq!(ahead.request(&new[..2]), 2);
    assert_eq!(intact(ahead.take(&new[1])).as_ref(), &moved[1][..]);
    // Every buffer came back, those of windows forgotten while being read
    // included.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        ahead.shared.buffers().release_unused();
        if ahead.shared.buffers().allocated() == 0 {
            break;
        }
        assert!(Instant::now() < until, "a buffer never came back");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A partition whose batches are those of one segment file.
fn partition(cache: Arc<TailCache>, planned: &[PlannedBatch]) -> PartitionLog {
    let mut state = PartitionState::default();
    for b in planned {
        let entry = crate::segment_index::BatchEntry {
            base_offset: b.base_offset,
            last_offset: b.last_offset,
            max_timestamp: 0,
            position: b.position,
            len: b.len as u32,
        };
        state.push_batch(b.segment, &b.file, entry);
    }
    let end = planned.last().map_or(0, |b| b.last_offset + 1);
    state.next_offset = end;
    state.high_watermark = end;
    PartitionLog::new(
        crate::TopicId([1; 16]),
        0,
        std::env::temp_dir(),
        state,
        cache,
        Arc::new(crate::segment_index::cache::IndexCache::new(
            std::env::temp_dir(),
            0,
        )),
    )
}

#[test]
fn a_reader_going_through_a_partition_in_order_reads_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let batches = ten_batches();
    let Some((_, planned)) = segment(dir.path(), "a.wal", 3, &batches) else {
        return;
    };
    let cache = Arc::new(TailCache::with_read_ahead(0, DEFAULT_BYTES));
    let log = partition(Arc::clone(&cache), &planned);
    let one = batches[0].len();
    // A first read is no pattern yet.
    assert_eq!(log.read(0, one).unwrap().records.as_ref(), &batches[0][..]);
    assert_eq!(cache.ahead.held_bytes(), 0);
    // The second, where the first ended, reads ahead what follows it.
    assert_eq!(log.read(4, one).unwrap().records.as_ref(), &batches[1][..]);
    assert!(cache.ahead.holds(&planned[2]));
    assert!(cache.ahead.holds(&planned[9]));
    for (i, expected) in batches.iter().enumerate().skip(2) {
        let offset = i as i64 * 4;
        assert_eq!(
            log.read(offset, one).unwrap().records.as_ref(),
            &expected[..]
        );
    }
    assert_eq!(
        cache.ahead.held_bytes(),
        0,
        "everything read ahead was served"
    );
    // A jump elsewhere is not a sequential reader.
    assert_eq!(log.read(12, one).unwrap().records.as_ref(), &batches[3][..]);
    assert_eq!(cache.ahead.held_bytes(), 0);
    // A read of several batches takes them from the read-ahead too.
    log.read(16, one).unwrap();
    assert!(cache.ahead.holds(&planned[5]));
    let read = log.read(20, 3 * one).unwrap();
    assert_eq!(read.records.as_ref(), &batches[5..8].concat()[..]);
}
