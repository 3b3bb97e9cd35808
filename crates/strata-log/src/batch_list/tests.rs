#![allow(clippy::unwrap_used)]
use std::path::Path;

use super::*;
use crate::segment_index::cache::{Entries, EntriesKey, IndexCache};
use crate::segment_index::{self, IndexedBatch};
use crate::topic::TopicId;

const HOLDER: Holder = (TopicId([3; 16]), 1);

fn entry(base: i64) -> BatchEntry {
    BatchEntry {
        base_offset: base,
        last_offset: base + 9,
        max_timestamp: 1000 + base,
        position: 32 + base as u64 * 10,
        len: 100,
    }
}

fn file(dir: &Path, name: &str) -> Arc<SegmentFile> {
    let path = dir.join(name);
    std::fs::write(&path, b"segment").unwrap();
    Arc::new(SegmentFile::open(&path, false).unwrap())
}

/// A list of batches 0, 10, .. 90: 0–40 in segment 1, 50–90 in segment 2.
fn two_segments(dir: &Path) -> (BatchList, Arc<SegmentFile>, Arc<SegmentFile>) {
    let (one, two) = (file(dir, "1.wal"), file(dir, "2.wal"));
    let mut list = BatchList::default();
    for base in (0..100).step_by(10) {
        let (segment, f) = if base < 50 { (1, &one) } else { (2, &two) };
        list.push(segment, f, entry(base));
    }
    (list, one, two)
}

/// Seals segment 1 (its index written and installed) and summarizes it.
fn seal_first(dir: &Path, list: &mut BatchList, one: &Arc<SegmentFile>) -> IndexCache {
    let mut indexed: Vec<IndexedBatch> = (0..50)
        .step_by(10)
        .map(|base| {
            let e = entry(base);
            IndexedBatch {
                topic: HOLDER.0,
                partition: HOLDER.1,
                base_offset: e.base_offset,
                last_offset: e.last_offset,
                max_timestamp: e.max_timestamp,
                position: e.position,
                len: e.len,
            }
        })
        .collect();
    segment_index::write(&strata_wal::RealStorage, dir, 1, &mut indexed).unwrap();
    let cache = IndexCache::new(dir.to_path_buf(), 1 << 20);
    cache.installed(1, one.uid());
    list.summarize(1, one.uid());
    cache
}

fn key(one: &Arc<SegmentFile>) -> EntriesKey {
    EntriesKey {
        segment: 1,
        file: one.uid(),
        topic: HOLDER.0,
        partition: HOLDER.1,
    }
}

fn bases(list: &BatchList, from: i64, idx: &Indexes<'_>) -> Result<Vec<i64>, NeedIndex> {
    let mut out = Vec::new();
    list.visit_from(HOLDER, from, idx, |b| {
        out.push(b.base_offset);
        true
    })?;
    Ok(out)
}

#[test]
fn batches_of_one_file_make_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (list, _, _) = two_segments(dir.path());
    assert_eq!((list.runs(), list.len(), list.bytes()), (2, 10, 1000));
    let cache = IndexCache::new(dir.path().to_path_buf(), 0);
    let idx = Indexes {
        cache: &cache,
        held: &[],
    };
    assert_eq!(
        bases(&list, 35, &idx).unwrap(),
        vec![30, 40, 50, 60, 70, 80, 90]
    );
    assert_eq!(list.last_base(), Some(90));
}

#[test]
fn a_summarized_run_reads_its_batches_from_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let (mut list, one, _) = two_segments(dir.path());
    let cache = seal_first(dir.path(), &mut list, &one);
    let none: Vec<(EntriesKey, Entries)> = Vec::new();
    let idx = Indexes {
        cache: &cache,
        held: &none,
    };
    // Not loaded yet: the walk says which entries it needs.
    assert_eq!(bases(&list, 0, &idx), Err(NeedIndex(key(&one))));
    // The summary alone answers reads past it.
    assert_eq!(bases(&list, 55, &idx).unwrap(), vec![50, 60, 70, 80, 90]);
    let loaded = cache.load(&key(&one)).unwrap().unwrap();
    assert_eq!(loaded.len(), 5);
    let expected: Vec<i64> = (0..100).step_by(10).collect();
    assert_eq!(bases(&list, 0, &idx).unwrap(), expected);
    // A file whose index on disk is another's is not loaded.
    cache.removing(1);
    let other = EntriesKey {
        file: 0,
        ..key(&one)
    };
    assert!(cache.load(&other).unwrap().is_none());
}

#[test]
fn retention_cuts_a_summarized_run_without_listing_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut list, one, _) = two_segments(dir.path());
    let cache = seal_first(dir.path(), &mut list, &one);
    let empty = Indexes {
        cache: &cache,
        held: &[],
    };
    // Nothing changes until the entries are at hand.
    assert!(list.drop_below(HOLDER, 25, &empty).is_err());
    assert_eq!(list.len(), 10);
    let held = vec![(key(&one), cache.load(&key(&one)).unwrap().unwrap())];
    let idx = Indexes {
        cache: &cache,
        held: &held,
    };
    let removed = list.drop_below(HOLDER, 25, &idx).unwrap();
    assert_eq!(
        removed,
        vec![Removed {
            segment: 1,
            batches: 2,
            bytes: 200
        }]
    );
    assert_eq!((list.len(), list.bytes(), list.runs()), (8, 800, 2));
    assert_eq!(bases(&list, 0, &idx).unwrap()[..2], [20, 30]);
    // A whole run goes by its summary.
    let removed = list.drop_below(HOLDER, 60, &empty).unwrap();
    assert_eq!(removed.iter().map(|r| r.batches).sum::<u64>(), 4);
    assert_eq!(bases(&list, 0, &empty).unwrap(), vec![60, 70, 80, 90]);
}

#[test]
fn relocating_a_run_in_order_makes_one_run_of_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut list, one, _) = two_segments(dir.path());
    let cache = seal_first(dir.path(), &mut list, &one);
    let held = vec![(key(&one), cache.load(&key(&one)).unwrap().unwrap())];
    let idx = Indexes {
        cache: &cache,
        held: &held,
    };
    let copy = file(dir.path(), "1.copy");
    for (i, base) in (0..50).step_by(10).enumerate() {
        let from = (1, entry(base).position);
        let (old, at) = list.remove(HOLDER, base, from, &idx).unwrap().unwrap();
        let moved = BatchEntry {
            position: 5000 + i as u64 * 100,
            ..old
        };
        list.insert(at, 1, &copy, moved);
    }
    assert_eq!((list.runs(), list.len(), list.bytes()), (2, 10, 1000));
    let mut positions = Vec::new();
    list.visit_from(HOLDER, 0, &idx, |b| {
        positions.push((b.file.uid(), b.position));
        true
    })
    .unwrap();
    assert_eq!(positions[..2], [(copy.uid(), 5000), (copy.uid(), 5100)]);
    // A batch no longer where it was is not moved again.
    assert!(list
        .remove(HOLDER, 0, (1, entry(0).position), &idx)
        .unwrap()
        .is_none());
}

#[test]
fn taking_a_batch_from_the_middle_splits_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let (mut list, _, _) = two_segments(dir.path());
    let cache = IndexCache::new(dir.path().to_path_buf(), 0);
    let idx = Indexes {
        cache: &cache,
        held: &[],
    };
    let (gone, _) = list
        .remove(HOLDER, 20, (1, entry(20).position), &idx)
        .unwrap()
        .unwrap();
    assert_eq!(gone, entry(20));
    assert_eq!((list.runs(), list.len(), list.bytes()), (3, 9, 900));
    assert_eq!(bases(&list, 0, &idx).unwrap()[..3], [0, 10, 30]);
    let facts: Vec<(i64, i64, u64)> = list
        .run_facts()
        .map(|r| (r.first_offset, r.last_offset, r.batches))
        .collect();
    assert_eq!(facts, vec![(0, 19, 2), (30, 49, 2), (50, 99, 5)]);
    let removed = list.clear();
    assert_eq!(removed.iter().map(|r| r.bytes).sum::<u64>(), 900);
    assert!(list.is_empty());
}
