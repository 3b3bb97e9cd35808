//! Sealing and removal of WAL segments, off the write path.
//!
//! The WAL is where batches stay: a rolled segment is sealed by writing its
//! index (`<id>.idx`, see [`crate::segment_index`]) — where each partition's
//! batches sit in it — so that startup loads it without reading its data.
//! Batch bytes are written once, by the appender; sealing writes a few
//! bytes per batch.
//!
//! Order of durability when sealing: the touched partitions' producer-state
//! snapshots, then the index. A crash before the index leaves the segment
//! unsealed: recovery scans it (replaying producer state above the
//! snapshots) and it is sealed again.
//!
//! A sealed segment is removed once no partition holds a batch in it (its
//! records were deleted, or their topic): the segment file first, then its
//! index, so a crash in between leaves an index without a segment, which
//! startup removes.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use strata_wal::SegmentId;
use tracing::{debug, error, info, warn};

use crate::log_limit::LogLimit;
use crate::registry::Registry;
use crate::segment_index::{self, IndexedBatch};
use crate::walk::Held;
use crate::LogError;

static SEAL_FAILED: LogLimit = LogLimit::new(std::time::Duration::from_secs(10));
static REMOVE_FAILED: LogLimit = LogLimit::new(std::time::Duration::from_secs(10));

/// The state of the sealing thread ([`crate::housekeeping`]): sealing and
/// removal here, compaction in [`crate::wal_compaction`] and
/// [`crate::key_compaction`].
pub(crate) struct Sealer {
    pub wal_dir: PathBuf,
    pub storage: Arc<dyn strata_wal::Storage>,
    pub registry: Arc<Registry>,
    /// Segments with an index.
    pub sealed: BTreeSet<SegmentId>,
    pub ledger: Arc<crate::ledger::Ledger>,
    /// Segments whose sealing failed, retried with each task.
    pub failed: Vec<SegmentId>,
    pub cache: Arc<crate::tail_cache::TailCache>,
    pub indexes: Arc<crate::segment_index::cache::IndexCache>,
    pub direct_io: bool,
    pub compaction: crate::wal_compaction::plan::CompactionOptions,
    /// Set when the store shuts down: compaction stops at the next batch.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    /// Set while an operator holds background compaction back
    /// ([`crate::LogStore::pause_compaction`]).
    pub paused: Arc<std::sync::atomic::AtomicBool>,
    /// Whether the compaction under way is the background one (which a
    /// pause stops), not one asked for (`strata wal compact`).
    pub background: bool,
    /// Run first on each compaction thread
    /// ([`crate::StoreOptions::compaction_thread_start`]).
    pub thread_start: Option<fn()>,
}

impl Sealer {
    /// Whether the store is shutting down.
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether background compaction is paused.
    pub(crate) fn paused(&self) -> bool {
        self.paused.load(std::sync::atomic::Ordering::Acquire)
    }

    /// `Err` when compaction under way must stop at this batch: the store
    /// is shutting down, or background compaction was paused.
    pub(crate) fn give_way(&self) -> Result<(), LogError> {
        if self.stopping() {
            return Err(LogError::ShuttingDown);
        }
        if self.background && self.paused() {
            return Err(LogError::CompactionPaused);
        }
        Ok(())
    }

    /// Seals the segments whose sealing failed before.
    pub(crate) fn retry_seals(&mut self) {
        let mut failed = std::mem::take(&mut self.failed);
        failed.retain(|id| match self.seal(*id) {
            Ok(()) => {
                crate::metrics::count(crate::metrics::WAL_SEGMENTS_SEALED);
                false
            }
            Err(e) => {
                crate::metrics::count(crate::metrics::WAL_SEAL_FAILURES);
                if let Some(suppressed) = SEAL_FAILED.admit() {
                    error!(segment = id, error = %e, suppressed, "sealing failed; the segment stays unsealed and is retried on the next roll");
                }
                true
            }
        });
        self.failed.extend(failed);
    }

    pub(crate) fn seal(&mut self, id: SegmentId) -> Result<(), LogError> {
        let mut batches = Vec::new();
        let mut touched = Vec::new();
        let mut files = BTreeSet::new();
        for (topic, index) in self.ledger.usage(id).holders.into_keys() {
            let Some(partition) = self.registry.partition(topic, index) else {
                continue;
            };
            let (found, snapshot) = partition.with_batches(&mut Held::new(), |st, idx| {
                let mut found = Vec::new();
                st.visit_segments((id, id), idx, |b| {
                    files.insert(b.file.uid());
                    found.push(IndexedBatch {
                        topic,
                        partition: index,
                        base_offset: b.base_offset,
                        last_offset: b.last_offset,
                        max_timestamp: b.max_timestamp,
                        position: b.position,
                        len: b.len,
                    });
                })?;
                let snapshot = crate::producer_snapshot::capture(st);
                Ok((found, snapshot))
            })?;
            if !found.is_empty() {
                batches.extend(found);
                touched.push((partition, snapshot));
            }
        }
        if files.len() > 1 {
            return Err(LogError::Corrupt(format!(
                "WAL segment {id}: partitions hold batches in {} different files of it",
                files.len()
            )));
        }
        for (partition, snapshot) in &touched {
            if !snapshot.producers.producers.is_empty() {
                crate::producer_snapshot::save(self.storage.as_ref(), &partition.dir, snapshot)?;
            }
        }
        segment_index::write(self.storage.as_ref(), &self.wal_dir, id, &mut batches)?;
        self.sealed.insert(id);
        if let Some(file) = files.first() {
            self.indexes.installed(id, *file);
            for (partition, _) in &touched {
                partition.state_mut().summarize(id, *file);
            }
        }
        debug!(
            segment = id,
            batches = batches.len(),
            partitions = touched.len(),
            "sealed WAL segment"
        );
        Ok(())
    }

    /// Removes the sealed segments no partition holds a batch in.
    pub(crate) fn remove_unheld(&mut self) {
        let unheld: Vec<SegmentId> = self
            .sealed
            .iter()
            .copied()
            .filter(|id| !self.ledger.is_held(*id))
            .collect();
        let mut removed = HashMap::new();
        for id in unheld {
            let segment = strata_wal::segment_path(&self.wal_dir, id);
            let bytes = std::fs::metadata(&segment).map_or(0, |m| m.len());
            let storage = self.storage.as_ref();
            self.indexes.removing(id);
            let result = storage
                .remove_file(&segment)
                .or_else(ignore_missing)
                .and_then(|()| {
                    storage
                        .remove_file(&segment_index::index_path(&self.wal_dir, id))
                        .or_else(ignore_missing)
                });
            match result {
                Ok(()) => {
                    self.sealed.remove(&id);
                    removed.insert(id, bytes);
                }
                Err(e) => {
                    if let Some(suppressed) = REMOVE_FAILED.admit() {
                        warn!(segment = id, error = %e, suppressed, "cannot remove a WAL segment no partition holds");
                    }
                }
            }
        }
        if removed.is_empty() {
            return;
        }
        let bytes: u64 = removed.values().sum();
        crate::metrics::count_by(crate::metrics::WAL_SEGMENTS_REMOVED, removed.len() as u64);
        crate::metrics::count_by(crate::metrics::WAL_REMOVED_BYTES, bytes);
        if let Err(e) = strata_wal::sync_dir(self.storage.as_ref(), &self.wal_dir) {
            warn!(error = %e, "cannot sync the WAL dir after removing segments");
        }
        info!(
            segments = removed.len(),
            bytes, "removed WAL segments no partition holds any more"
        );
    }
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}
