//! The simulated disk: what a power cut keeps and loses, torn writes and
//! injected EIO.
#![allow(clippy::unwrap_used)]

use strata_wal::{SimStorage, Storage};

#[test]
fn only_synced_bytes_and_names_survive_a_power_cut() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("old"), b"before").unwrap();
    let sim = SimStorage::new(root, 7).unwrap();
    sim.create_dir_all(&root.join("a/b")).unwrap();
    sim.sync_dir(root).unwrap();
    let synced = sim.create(&root.join("a/synced"), true).unwrap();
    synced.write_all_at(b"durable", 0).unwrap();
    synced.sync_data().unwrap();
    sim.sync_dir(&root.join("a")).unwrap();
    synced.write_all_at(b" lost", 7).unwrap();
    // Written and synced, but its name never made durable.
    let unnamed = sim.create(&root.join("a/b/unnamed"), true).unwrap();
    unnamed.write_all_at(b"x", 0).unwrap();
    unnamed.sync_all().unwrap();
    // A removal whose directory was not synced is undone.
    sim.remove_file(&root.join("old")).unwrap();
    assert_eq!(
        std::fs::read(root.join("a/synced")).unwrap(),
        b"durable lost"
    );
    assert_eq!(sim.syncs(), 4);
    sim.power_cut(false).unwrap();
    assert_eq!(std::fs::read(root.join("a/synced")).unwrap(), b"durable");
    assert!(!root.join("a/b/unnamed").exists());
    assert!(root.join("a/b").is_dir());
    assert_eq!(std::fs::read(root.join("old")).unwrap(), b"before");
    let err = sim.create(&root.join("new"), true).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
}

#[test]
fn a_subdirectory_whose_parent_was_never_synced_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let sim = SimStorage::new(root, 1).unwrap();
    sim.create_dir_all(&root.join("p")).unwrap();
    let file = sim.create(&root.join("p/f"), true).unwrap();
    file.write_all_at(b"x", 0).unwrap();
    file.sync_all().unwrap();
    sim.sync_dir(&root.join("p")).unwrap();
    sim.power_cut(false).unwrap();
    assert!(!root.join("p").exists());
}

#[test]
fn a_torn_write_keeps_a_prefix_and_injected_failures_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let sim = SimStorage::new(root, 3).unwrap();
    let file = sim.create(&root.join("f"), true).unwrap();
    sim.sync_dir(root).unwrap();
    file.write_all_at(b"head", 0).unwrap();
    file.sync_data().unwrap();
    sim.fail_write(2);
    assert!(file.write_all_at(b"never", 4).is_err());
    sim.fail_sync(3);
    file.write_all_at(b"0123456789", 4).unwrap();
    assert!(file.sync_data().is_err());
    assert_eq!(sim.injected_failures(), 2);
    sim.cut_at_sync(4);
    assert!(file.sync_data().is_err());
    assert!(!sim.powered());
    sim.power_cut(true).unwrap();
    let bytes = std::fs::read(root.join("f")).unwrap();
    assert!(bytes.starts_with(b"head"));
    assert!(bytes.len() < 14);
    assert!(b"head0123456789".starts_with(&bytes));
}

#[test]
fn directories_created_durably_survive_a_power_cut() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let sim = SimStorage::new(root, 1).unwrap();
    strata_wal::create_dir_all_durably(&sim, &root.join("a/b")).unwrap();
    let file = sim.create(&root.join("a/b/f"), true).unwrap();
    file.write_all_at(b"x", 0).unwrap();
    file.sync_all().unwrap();
    sim.sync_dir(&root.join("a/b")).unwrap();
    // Nothing to create: nothing synced.
    let syncs = sim.syncs();
    strata_wal::create_dir_all_durably(&sim, &root.join("a/b")).unwrap();
    assert_eq!(sim.syncs(), syncs);
    sim.power_cut(false).unwrap();
    assert_eq!(std::fs::read(root.join("a/b/f")).unwrap(), b"x");
}
