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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use strata_wal::SegmentId;
use tracing::{debug, error, info, warn};

use crate::log_limit::LogLimit;
use crate::registry::Registry;
use crate::segment_index::{self, IndexedBatch};
use crate::LogError;

static SEAL_FAILED: LogLimit = LogLimit::new(std::time::Duration::from_secs(10));
static REMOVE_FAILED: LogLimit = LogLimit::new(std::time::Duration::from_secs(10));

/// Work for the sealing thread.
#[derive(Debug)]
pub(crate) enum SealTask {
    /// A rolled segment, all of whose batches are durable and published.
    Seal(SegmentId),
    /// Records or topics were deleted: remove the segments nobody holds.
    Remove,
    /// Compact every run `policy` finds due, now; answer with what was done.
    CompactNow(
        crate::wal_compaction::CompactionPolicy,
        std::sync::mpsc::Sender<crate::wal_compaction::CompactionTotals>,
    ),
    /// Regroup every sealed segment whose partitions' batches are
    /// interleaved, now; answer with what was done.
    RegroupNow(std::sync::mpsc::Sender<crate::wal_compaction::CompactionTotals>),
}

pub(crate) struct Sealer {
    pub wal_dir: PathBuf,
    pub registry: Arc<Registry>,
    pub rx: std::sync::mpsc::Receiver<SealTask>,
    /// Segments with an index.
    pub sealed: BTreeSet<SegmentId>,
    /// Set with a [`SealTask::Remove`] that found the queue full.
    pub removal_wanted: Arc<AtomicBool>,
    pub ledger: Arc<crate::ledger::Ledger>,
    /// Segments whose sealing failed, retried with each task.
    pub failed: Vec<SegmentId>,
    pub cache: Arc<crate::tail_cache::TailCache>,
    pub direct_io: bool,
    pub compaction: crate::wal_compaction::CompactionOptions,
}

impl Sealer {
    /// Seals each rolled segment as it arrives, removes unheld ones, and
    /// compacts the WAL between tasks, until every sender is gone.
    pub fn run(mut self) {
        use std::sync::mpsc::RecvTimeoutError;
        // Compaction also runs right after recovery.
        let mut compact_at = std::time::Instant::now();
        loop {
            let wait = compact_at.saturating_duration_since(std::time::Instant::now());
            let task = match self.rx.recv_timeout(wait) {
                Ok(task) => Some(task),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut remove = self.removal_wanted.swap(false, Ordering::AcqRel);
            match task {
                Some(SealTask::Seal(id)) => self.failed.push(id),
                Some(SealTask::Remove) => remove = true,
                Some(SealTask::CompactNow(policy, reply)) => {
                    self.retry_seals();
                    self.remove_unheld();
                    let _ = reply.send(self.compact_all(policy));
                    continue;
                }
                Some(SealTask::RegroupNow(reply)) => {
                    self.retry_seals();
                    self.remove_unheld();
                    let _ = reply.send(self.regroup_all());
                    continue;
                }
                None => {}
            }
            self.retry_seals();
            if remove {
                self.remove_unheld();
            }
            if std::time::Instant::now() >= compact_at {
                // One run at a time, so seals and removals never wait long;
                // another run follows at once if this one did something.
                let gave_back =
                    matches!(self.compact_next(), Some(Ok(run)) if run.reclaimed_bytes > 0);
                compact_at = if gave_back {
                    self.remove_unheld();
                    std::time::Instant::now()
                } else {
                    std::time::Instant::now() + self.compaction.check_interval
                };
            }
        }
    }

    fn retry_seals(&mut self) {
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
        for (topic, index) in self.ledger.usage(id).holders.into_keys() {
            if let Some(partition) = self.registry.partition(topic, index) {
                let st = partition.state();
                let before = batches.len();
                batches.extend(st.batches_in(id).map(|b| IndexedBatch {
                    topic,
                    partition: index,
                    base_offset: b.base_offset,
                    last_offset: b.last_offset,
                    max_timestamp: b.max_timestamp,
                    position: b.position,
                    len: b.len,
                }));
                if batches.len() > before {
                    let snapshot = crate::producer_snapshot::capture(&st);
                    drop(st);
                    touched.push((Arc::clone(&partition), snapshot));
                }
            }
        }
        for (partition, snapshot) in &touched {
            if !snapshot.producers.producers.is_empty() {
                crate::producer_snapshot::save(&partition.dir, snapshot)?;
            }
        }
        segment_index::write(&self.wal_dir, id, &mut batches)?;
        self.sealed.insert(id);
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
            let result = std::fs::remove_file(&segment)
                .or_else(ignore_missing)
                .and_then(|()| {
                    std::fs::remove_file(segment_index::index_path(&self.wal_dir, id))
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
        if let Err(e) = strata_wal::sync_dir(&self.wal_dir) {
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
