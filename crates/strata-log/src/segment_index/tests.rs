#![allow(clippy::unwrap_used)]
use super::*;

fn batch(partition: i32, base_offset: i64) -> IndexedBatch {
    IndexedBatch {
        topic: TopicId([7; 16]),
        partition,
        base_offset,
        last_offset: base_offset + 9,
        max_timestamp: 1_700_000_000_000 + base_offset,
        position: 8 + base_offset as u64 * 100,
        len: 100,
    }
}

/// Version 1 bytes, as the previous build wrote them.
fn encode_v1(batches: &[IndexedBatch]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&VERSION_1.to_be_bytes());
    out.extend_from_slice(&u32_len(batches.len()).to_be_bytes());
    for b in batches {
        out.extend_from_slice(&b.topic.0);
        out.extend_from_slice(&b.partition.to_be_bytes());
        put_entry(&mut out, &b.entry());
    }
    let crc = strata_wal::checksum(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn round_trips_sorted_by_partition_then_offset() {
    let mut batches = vec![batch(1, 20), batch(0, 10), batch(1, 0), batch(0, 0)];
    let bytes = encode(&mut batches);
    assert_eq!(
        bytes.len(),
        HEADER_LEN + 2 * RUN_LEN + CRC_LEN + 4 * ENTRY_LEN
    );
    let sorted = vec![batch(0, 0), batch(0, 10), batch(1, 0), batch(1, 20)];
    assert_eq!(decode(&bytes).unwrap(), sorted);
    assert_eq!(decode(&encode(&mut [])).unwrap(), vec![]);
    assert_eq!(decode(&encode_v1(&sorted)).unwrap(), sorted);
}

#[test]
fn runs_sum_up_their_batches_and_read_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut batches = vec![batch(0, 0), batch(0, 10), batch(1, 5)];
    batches[0].max_timestamp = i64::MAX;
    write(&strata_wal::RealStorage, dir.path(), 4, &mut batches).unwrap();
    let path = index_path(dir.path(), 4);
    let IndexHead::Runs(runs) = read_head(&path).unwrap().unwrap() else {
        panic!("not read as version 2");
    };
    assert_eq!(runs.len(), 2);
    let run = runs[0];
    assert_eq!((run.partition, run.entries, run.bytes), (0, 2, 200));
    assert_eq!(
        (run.first_offset, run.last_base, run.last_offset),
        (0, 10, 19)
    );
    assert_eq!((run.max_timestamp, run.max_timestamp_offset), (i64::MAX, 9));
    assert_eq!(run.end, batch(0, 10).position + 100);
    let file = File::open(&path).unwrap();
    let entries = read_entries(&file, &path, &runs[1]).unwrap().unwrap();
    assert_eq!(entries, vec![batch(1, 5).entry()]);
}

#[test]
fn every_flipped_byte_and_every_cut_is_detected() {
    for bytes in [
        encode(&mut [batch(0, 0), batch(3, 5)]),
        encode_v1(&[batch(0, 0), batch(3, 5)]),
    ] {
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(decode(&damaged).is_err(), "flip at {i} not detected");
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "cut at {len} not detected");
        }
    }
}

#[test]
fn the_cache_keeps_the_most_recently_used_runs_within_its_budget() {
    use cache::{EntriesKey, IndexCache};
    let dir = tempfile::tempdir().unwrap();
    let mut batches = vec![batch(0, 0), batch(0, 10), batch(1, 0), batch(1, 10)];
    write(&strata_wal::RealStorage, dir.path(), 9, &mut batches).unwrap();
    let run_bytes = 2 * std::mem::size_of::<BatchEntry>();
    let cache = IndexCache::new(dir.path().to_path_buf(), run_bytes);
    cache.installed(9, 77);
    let key = |partition| EntriesKey {
        segment: 9,
        file: 77,
        topic: TopicId([7; 16]),
        partition,
    };
    assert!(cache.get(&key(0)).is_none());
    assert_eq!(cache.load(&key(0)).unwrap().unwrap().len(), 2);
    assert!(cache.get(&key(0)).is_some());
    assert_eq!(
        cache.load(&key(1)).unwrap().unwrap()[1],
        batch(1, 10).entry()
    );
    assert!(cache.get(&key(0)).is_none(), "evicted for the newer run");
    assert!(cache.get(&key(1)).is_some());
    // Another file of the same segment is not read from this index.
    assert!(cache
        .load(&EntriesKey { file: 78, ..key(0) })
        .unwrap()
        .is_none());
    cache.removing(9);
    assert!(cache.get(&key(1)).is_some(), "cached entries stay valid");
    assert!(cache.load(&key(0)).unwrap().is_none());
}
