//! Housekeeping of the data dir at startup: what an interrupted operation
//! or an earlier layout left behind.

use std::path::Path;

use strata_wal::Storage;

use tracing::warn;

use crate::registry::Registry;
use crate::topic::TopicId;
use crate::LogError;

/// Removes partition dirs of topics that no longer exist (a delete that
/// crashed before its files were gone).
pub(crate) fn remove_orphan_partitions(storage: &dyn Storage, dir: &Path, registry: &Registry) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let id = name.split('-').next().and_then(TopicId::from_hex);
        let live = id.is_some_and(|id| registry.topic_by_id(id).is_some());
        if !live {
            warn!(dir = %entry.path().display(), "removing the files of a deleted topic");
            let _ = storage.remove_dir_all(&entry.path());
        }
    }
}

/// Removes `.tmp` files left by an interrupted metadata write, snapshot or
/// `strata wal repair`.
pub(crate) fn remove_leftover_tmp(storage: &dyn Storage, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.path().extension().is_some_and(|e| e == "tmp") {
            let _ = storage.remove_file(&entry.path());
        }
    }
}

/// Refuses a data dir holding per-partition segment files: they come from
/// an earlier layout this build does not read, and starting would hide
/// their records.
pub(crate) fn refuse_partition_segments(dir: &Path) -> Result<(), LogError> {
    let Ok(partitions) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for partition in partitions.flatten() {
        let Ok(files) = std::fs::read_dir(partition.path()) else {
            continue;
        };
        if let Some(file) = files
            .flatten()
            .find(|f| f.path().extension().is_some_and(|e| e == "log"))
        {
            return Err(LogError::Metadata {
                path: file.path(),
                reason: "per-partition segment files are from an earlier data layout; \
                         this build keeps records in the WAL segments only"
                    .to_string(),
            });
        }
    }
    Ok(())
}
