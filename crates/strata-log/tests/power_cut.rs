//! Power cuts on a simulated disk ([`strata_wal::SimStorage`]): a seeded
//! script of produces, retention, DeleteRecords, WAL and key compaction
//! and a topic deletion runs with the power cut at each sync in turn; the
//! durable image is then opened with the real file system and checked —
//! every acknowledged batch at its offset with its bytes, nothing served
//! twice or damaged, nothing that was never produced. A `kill -9` keeps the
//! page cache, so only a simulated disk can test this.
//!
//! Also: an EIO on a write or a sync fails that produce, loses nothing,
//! and the store takes writes again.
#![allow(clippy::unwrap_used)]

mod crash_script;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use crash_script::{
    check, create_topics, options, read_all, run, script, Op, Outcome, FOREVER, KEYED, SCRATCH,
    SHORT,
};
use strata_log::LogStore;
use strata_wal::{RealStorage, SimStorage};

const SEED: u64 = 0x5eed_2024;
const OPS: usize = 90;
/// Cut points tried at most (spread over all of them).
const MAX_CUTS: u64 = 200;

/// Runs the script on a store over `sim` until it fails (the power cut).
fn run_on(dir: &Path, sim: &SimStorage, ops: &[Op]) -> Outcome {
    let mut out = Outcome::default();
    match LogStore::open(&options(dir, Arc::new(sim.clone()))) {
        Ok((store, _)) => {
            if create_topics(&store, &mut out) {
                run(&store, ops, true, &mut out);
            }
            store.shutdown();
        }
        Err(_) => out.failures += 1,
    }
    out
}

/// Opens the durable image with the real file system and checks it.
fn reopen_and_check(dir: &Path, out: &Outcome, what: &str) {
    let checked = catch_unwind(AssertUnwindSafe(|| {
        let (store, _) = LogStore::open(&options(dir, Arc::new(RealStorage)))
            .unwrap_or_else(|e| panic!("reopen: {e}"));
        check(&store, out);
        store.shutdown();
    }));
    if let Err(panic) = checked {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
            .unwrap_or_default();
        panic!("{what}: {message}");
    }
}

/// The script moved log starts, compacted keys and deleted a topic.
fn script_did_everything(dir: &Path, out: &Outcome) {
    let (store, _) = LogStore::open(&options(dir, Arc::new(RealStorage))).unwrap();
    assert!(out.scratch_deleted && store.topic(SCRATCH).is_none());
    let short = store.topic(SHORT).and_then(|t| t.partition(0)).unwrap();
    assert!(short.bounds().0 > 0, "nothing deleted from {SHORT}");
    let (keyed, _) = read_all(&store, KEYED);
    let acked: usize = out.acked[KEYED].iter().map(|b| b.records.len()).sum();
    assert!(keyed.len() < acked, "nothing compacted away in {KEYED}");
    store.shutdown();
}

#[test]
fn every_acknowledged_write_survives_a_power_cut_at_every_sync() {
    let ops = script(SEED, OPS);
    let dry = tempfile::tempdir().unwrap();
    let sim = SimStorage::new(dry.path(), 0).unwrap();
    let out = run_on(dry.path(), &sim, &ops);
    assert_eq!(out.failures, 0, "the dry run failed");
    let total = sim.syncs();
    sim.power_cut(true).unwrap();
    reopen_and_check(dry.path(), &out, "after the whole script");
    script_did_everything(dry.path(), &out);

    let points: Vec<u64> = if total <= MAX_CUTS {
        (1..=total).collect()
    } else {
        (0..MAX_CUTS).map(|i| 1 + i * total / MAX_CUTS).collect()
    };
    for k in &points {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimStorage::new(dir.path(), *k).unwrap();
        sim.cut_at_sync(*k);
        let out = run_on(dir.path(), &sim, &ops);
        let tear = k.is_multiple_of(2);
        sim.power_cut(tear).unwrap();
        reopen_and_check(
            dir.path(),
            &out,
            &format!("power cut at sync {k} of {total} (torn: {tear})"),
        );
        // Recovery's own repairs (torn tails cut, interrupted compactions
        // finished, a new segment) survive a power cut during recovery.
        if k.is_multiple_of(4) {
            let again = SimStorage::new(dir.path(), k + 1).unwrap();
            again.cut_at_sync(1 + k / 4 % 4);
            if let Ok((store, _)) = LogStore::open(&options(dir.path(), Arc::new(again.clone()))) {
                store.shutdown();
            }
            again.power_cut(true).unwrap();
            reopen_and_check(
                dir.path(),
                &out,
                &format!("a power cut during recovery after the cut at sync {k}"),
            );
        }
    }
    assert!(
        points.len() >= 50 || total < 50,
        "only {} cut points of {total}",
        points.len()
    );
}

/// One produce to "forever" with an EIO injected by `inject`; then one
/// without.
fn produce_through_eio(inject: impl Fn(&SimStorage)) {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimStorage::new(dir.path(), 1).unwrap();
    let mut options = options(dir.path(), Arc::new(sim.clone()));
    // No roll: the appender is the only writer.
    options.wal_segment_bytes = 1 << 20;
    let (store, _) = LogStore::open(&options).unwrap();
    let mut out = Outcome::default();
    assert!(create_topics(&store, &mut out));
    let produce = Op::Produce {
        topic: 0,
        records: 2,
    };
    run(&store, &[produce; 5], true, &mut out);
    assert_eq!(out.failures, 0);
    inject(&sim);
    run(&store, &[produce], false, &mut out);
    assert_eq!(out.failures, 1, "the produce did not fail");
    assert_eq!(sim.injected_failures(), 1);
    run(&store, &[produce; 3], true, &mut out);
    assert_eq!(out.failures, 1, "the store takes no writes after the EIO");
    assert_eq!(out.acked[FOREVER].len(), 8);
    let (served, _) = read_all(&store, FOREVER);
    assert_eq!(served.len(), 16, "the refused batch is served");
    store.shutdown();
    sim.power_cut(false).unwrap();
    reopen_and_check(dir.path(), &out, "after an EIO");
    let (store, _) =
        LogStore::open(&crash_script::options(dir.path(), Arc::new(RealStorage))).unwrap();
    let (served, _) = read_all(&store, FOREVER);
    assert_eq!(served.len(), 16, "the refused batch came back");
    store.shutdown();
}

#[test]
fn an_eio_on_a_write_fails_the_produce_and_loses_nothing() {
    produce_through_eio(|sim| sim.fail_write(sim.writes() + 1));
}

#[test]
fn an_eio_on_a_sync_fails_the_produce_and_loses_nothing() {
    produce_through_eio(|sim| sim.fail_sync(sim.syncs() + 1));
}

/// The directories of a fresh data dir (and of a new partition) are
/// durable before anything in them is acknowledged.
#[test]
fn a_topic_created_in_a_fresh_data_dir_survives_a_power_cut() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimStorage::new(dir.path(), 1).unwrap();
    let (store, _) = LogStore::open(&options(dir.path(), Arc::new(sim.clone()))).unwrap();
    let mut out = Outcome::default();
    assert!(create_topics(&store, &mut out));
    let produce = Op::Produce {
        topic: 0,
        records: 1,
    };
    run(&store, &[produce], true, &mut out);
    assert_eq!(out.failures, 0);
    store.shutdown();
    sim.power_cut(false).unwrap();
    reopen_and_check(
        dir.path(),
        &out,
        "after creating topics in a fresh data dir",
    );
}
