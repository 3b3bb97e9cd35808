//! The data lifecycle on a real directory: retention moves log starts,
//! WAL compaction gives the space back, and every live record stays where
//! it was — across restarts, and across a compaction cut short at each of
//! its steps.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_log::wal_compaction::{CompactionOptions, CompactionPolicy};
use strata_log::{LogStore, PendingBatch, StoreOptions};
use strata_protocol::batch::split_batches;
use strata_protocol::builder::{build_batch, RecordSpec};

/// Options whose WAL rolls every 4 KiB and compacts whatever has dead bytes.
fn options(dir: &Path, compact: bool) -> StoreOptions {
    let mut options = StoreOptions::new(dir.to_path_buf());
    options.wal_segment_bytes = 4096;
    options.wal_direct_io = false;
    options.wal_compaction = CompactionOptions {
        policy: CompactionPolicy {
            live_ratio: if compact { 1.0 } else { 0.0 },
            dead_bytes: 0,
            max_age_ms: u64::MAX,
            max_output_bytes: 4096,
        },
        bytes_per_sec: 0,
        check_interval: Duration::from_millis(20),
    };
    options
}

/// Produces `count` records to each topic in turn, one batch each, so the
/// topics' batches share WAL segments; timestamps are `timestamp`.
fn produce_interleaved(store: &LogStore, topics: &[&str], count: usize, timestamp: i64) {
    let rt = common::runtime();
    for i in 0..count {
        for topic in topics {
            let partition = store.topic(topic).unwrap().partition(0).unwrap();
            let value = format!("{topic}-{i}-{}", "x".repeat(100));
            let batch = Bytes::from(build_batch(&[RecordSpec {
                key: Some(b"k"),
                value: Some(value.as_bytes()),
                timestamp,
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

/// `(offset, value)` of every record of a topic's partition 0.
fn records(store: &LogStore, topic: &str) -> Vec<(i64, String)> {
    let log = store.topic(topic).unwrap().partition(0).unwrap();
    let mut out = Vec::new();
    let (mut offset, high_watermark) = log.bounds();
    while offset < high_watermark {
        let read = log.read(offset, 1 << 20).unwrap();
        assert!(!read.records.is_empty(), "nothing read at {offset}");
        for (header, range) in split_batches(&read.records).unwrap() {
            strata_protocol::records::for_each_record(
                &read.records[range],
                &header,
                1 << 20,
                |r| {
                    out.push((
                        r.offset,
                        String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                    ));
                },
            )
            .unwrap();
            offset = header.last_offset() + 1;
        }
    }
    out
}

fn expected(topic: &str, range: std::ops::Range<usize>) -> Vec<(i64, String)> {
    range
        .map(|i| (i as i64, format!("{topic}-{i}-{}", "x".repeat(100))))
        .collect()
}

fn wal_bytes(dir: &Path) -> u64 {
    strata_wal::list_segments(&dir.join("wal"))
        .unwrap()
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two topics whose batches share every segment: "short" (its records
/// all past retention) and "forever".
fn shared_segments(dir: &Path, compact: bool) -> StoreOptions {
    let options = options(dir, compact);
    let (store, _) = LogStore::open(&options).unwrap();
    let forever = BTreeMap::from([("retention.ms".to_string(), "-1".to_string())]);
    let short = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
    store.create_topic("forever", 1, forever, false).unwrap();
    store.create_topic("short", 1, short, false).unwrap();
    produce_interleaved(&store, &["short", "short", "forever"], 100, 1_000);
    store.shutdown();
    options
}

#[test]
fn retention_removes_only_what_it_must_and_compaction_gives_the_disk_back() {
    let dir = tempfile::tempdir().unwrap();
    let options = shared_segments(dir.path(), false);
    let (store, _) = LogStore::open(&options).unwrap();
    let before = wal_bytes(dir.path());
    // Far past "short"'s retention.ms; "forever" keeps everything.
    let removed = store.enforce_retention(1_000_000).unwrap();
    assert_eq!(removed, 200);
    let short = store.topic("short").unwrap().partition(0).unwrap();
    assert_eq!(short.bounds(), (200, 200));
    assert_eq!(records(&store, "forever"), expected("forever", 0..100));
    // Every segment still holds a "forever" batch: nothing to remove yet.
    assert!(wal_bytes(dir.path()) >= before * 9 / 10);
    store.shutdown();

    // With compaction on, the space comes back and nothing moves.
    let options = options_compacting(dir.path());
    let (store, _) = LogStore::open(&options).unwrap();
    wait_for("WAL compaction", || wal_bytes(dir.path()) < before / 2);
    assert_eq!(records(&store, "forever"), expected("forever", 0..100));
    assert_eq!(
        store.topic("short").unwrap().partition(0).unwrap().bounds(),
        (200, 200)
    );
    store.shutdown();
    let (store, report) = LogStore::open(&options).unwrap();
    assert!(report.damaged.is_empty());
    assert_eq!(records(&store, "forever"), expected("forever", 0..100));
    assert_eq!(
        store.topic("short").unwrap().partition(0).unwrap().bounds(),
        (200, 200)
    );
    store.shutdown();
}

fn options_compacting(dir: &Path) -> StoreOptions {
    options(dir, true)
}

fn leftover_tmp(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp"))
}

#[test]
fn a_pause_holds_compaction_back_and_gives_up_the_run_under_way() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = shared_segments(dir.path(), true);
    // Slow enough that a run is still under way when the pause comes.
    options.wal_compaction.bytes_per_sec = 4000;
    let (store, _) = LogStore::open(&options).unwrap();
    store.pause_compaction(true);
    assert!(store.compaction_paused());
    store.enforce_retention(1_000_000).unwrap();
    // Segments nobody holds any more are still removed while paused.
    std::thread::sleep(Duration::from_millis(200));
    let before = wal_bytes(dir.path());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(wal_bytes(dir.path()), before, "compacted while paused");

    store.pause_compaction(false);
    wait_for("a run to start", || leftover_tmp(dir.path()));
    store.pause_compaction(true);
    wait_for("the run to be given up", || !leftover_tmp(dir.path()));
    let paused_at = wal_bytes(dir.path());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(wal_bytes(dir.path()), paused_at, "compacted while paused");
    assert!(!leftover_tmp(dir.path()));
    assert_eq!(records(&store, "forever"), expected("forever", 0..100));

    store.pause_compaction(false);
    wait_for("a run after resuming", || wal_bytes(dir.path()) < paused_at);
    assert_eq!(records(&store, "forever"), expected("forever", 0..100));
    store.shutdown();
    let (store, report) = LogStore::open(&options).unwrap();
    assert!(report.damaged.is_empty());
    assert_eq!(records(&store, "forever"), expected("forever", 0..100));
    assert!(
        !store.compaction_paused(),
        "a pause is not kept across restarts"
    );
    store.shutdown();
}

#[test]
fn retention_bytes_keeps_the_newest_batches() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), false);
    let (store, _) = LogStore::open(&options).unwrap();
    let limit = BTreeMap::from([
        ("retention.ms".to_string(), "-1".to_string()),
        ("retention.bytes".to_string(), "1000".to_string()),
    ]);
    store.create_topic("t", 1, limit, false).unwrap();
    produce_interleaved(&store, &["t"], 40, 1_000);
    store.enforce_retention(2_000).unwrap();
    let got = records(&store, "t");
    let size = store.topic("t").unwrap().partition(0).unwrap().size_bytes();
    assert!(size >= 1000, "kept {size} bytes");
    assert!(got.len() < 40 && !got.is_empty());
    let first = got[0].0 as usize;
    assert_eq!(got, expected("t", first..40));
    // Applied without a restart when the config changes.
    let forever = BTreeMap::from([
        ("retention.bytes".to_string(), "-1".to_string()),
        ("retention.ms".to_string(), "-1".to_string()),
    ]);
    store.set_topic_config("t", forever, false).unwrap();
    produce_interleaved(&store, &["t"], 0, 1_000);
    assert_eq!(store.enforce_retention(2_000).unwrap(), 0);
    store.shutdown();
    let (store, _) = LogStore::open(&options).unwrap();
    assert_eq!(records(&store, "t"), expected("t", first..40));
    store.shutdown();
}

/// A compaction stopped after each of its file operations: a restart
/// finds every live record once, at its offset.
#[test]
fn a_compaction_cut_short_at_any_step_loses_and_duplicates_nothing() {
    let template = tempfile::tempdir().unwrap();
    shared_segments(template.path(), false);
    {
        let (store, _) = LogStore::open(&options(template.path(), false)).unwrap();
        store.enforce_retention(1_000_000).unwrap();
        store.shutdown();
    }
    // Compact once in a copy, recording each file state on the way; then
    // replay every intermediate state a crash could leave.
    let states = compaction_states(template.path());
    assert!(states.len() >= 3, "{} states", states.len());
    for (step, state) in states.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        common::copy_tree(state.path(), dir.path());
        let (store, report) = LogStore::open(&options(dir.path(), false)).unwrap();
        assert!(report.damaged.is_empty(), "step {step}");
        assert_eq!(
            records(&store, "forever"),
            expected("forever", 0..100),
            "step {step}"
        );
        store.shutdown();
    }
}

/// Every state of the WAL dir a crash during one compaction run could
/// leave: the files after each rename or removal the run makes, taken by
/// replaying the run's effects on a copy of the directory one at a time.
fn compaction_states(template: &Path) -> Vec<tempfile::TempDir> {
    let before = tempfile::tempdir().unwrap();
    common::copy_tree(template, before.path());
    let after = tempfile::tempdir().unwrap();
    common::copy_tree(template, after.path());
    {
        let (store, _) = LogStore::open(&options_compacting(after.path())).unwrap();
        let start = wal_bytes(after.path());
        wait_for("WAL compaction", || wal_bytes(after.path()) < start / 2);
        store.shutdown();
    }
    let list = |d: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(d.join("wal"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().to_string(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    };
    let old = list(before.path());
    let new = list(after.path());
    // The order a run works in: indexes of replaced files go, replacements
    // arrive (rename), then superseded segments go. Each prefix of that
    // sequence is a state a crash can leave.
    let mut steps: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    for (name, bytes) in &new {
        if old.get(name) != Some(bytes) && name.ends_with(".wal") {
            steps.push((name.replace(".wal", ".idx"), None));
            steps.push((name.clone(), Some(bytes.clone())));
            if let Some(index) = new.get(&name.replace(".wal", ".idx")) {
                steps.push((name.replace(".wal", ".idx"), Some(index.clone())));
            }
        }
    }
    for name in old.keys() {
        if !new.contains_key(name) {
            steps.push((name.clone(), None));
        }
    }
    let mut states = vec![before];
    for i in 0..steps.len() {
        let state = tempfile::tempdir().unwrap();
        common::copy_tree(template, state.path());
        for (name, bytes) in &steps[..=i] {
            let path = state.path().join("wal").join(name);
            match bytes {
                Some(b) => std::fs::write(path, b).unwrap(),
                None => {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        // Partition snapshots and metadata as they were after the run.
        common::copy_tree(&after.path().join("meta"), &state.path().join("meta"));
        states.push(state);
    }
    states
}
